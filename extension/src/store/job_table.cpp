#include "store/job_table.h"

extern "C" {
#include "access/tupdesc.h"
#include "utils/rel.h"
}

namespace jobq::store {

bool TableHasOnlyJobqRules(Relation rel, const char *check_name) {
    TupleConstr *constr = RelationGetDescr(rel)->constr;
    return rel->trigdesc == nullptr && rel->rd_rules == nullptr && !rel->rd_rel->relrowsecurity &&
           !rel->rd_rel->relispartition && constr != nullptr && !constr->has_generated_stored &&
           constr->num_check == 1 && strcmp(constr->check[0].ccname, check_name) == 0;
}

bool JobTableIsJobqs(Relation job) { return TableHasOnlyJobqRules(job, "job_row_valid"); }

}  // namespace jobq::store
